"""Code intelligence for diffwise: diff model, tree-sitter syntax, analyzers, test synthesis (no network)."""
