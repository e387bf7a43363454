"""Config sections owned by one feature each (ECR, CodeBuild, budgets).

Each module exports KEYS (the allowed keys of its section, for the unknown-key check) and
`parse(doc, raw, root)` returning a frozen dataclass; `config.resolve` calls them.
"""
