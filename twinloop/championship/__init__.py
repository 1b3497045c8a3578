"""The model championship: CRN round robin, Bradley–Terry ranking, confirmation on fresh seeds."""
