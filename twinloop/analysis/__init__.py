"""The Failure Analyzer: decision, failure types, root causes, patterns, impact, hypotheses."""
