"""The digital twin: a vectorised customer-lifecycle simulator of a business."""
