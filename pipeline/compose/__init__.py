"""Composers: one module per artifact kind, each turning a node's inputs into its artifact."""
