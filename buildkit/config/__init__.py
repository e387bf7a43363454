"""imgbuild.yaml + IMGBUILD_* + flags, resolved once into frozen dataclasses.

- `loading`: the Config model, `find_config` and `resolve` (precedence: flag > env > file >
  default, docs/config.md);
- `yamlsrc`: YAML with line numbers, for errors that name file:line;
- `schema`: typed field readers and the unknown-key check with "did you mean";
- `budgets`, `codebuild`, `ecr`: one section each, owned by its feature (KEYS and `parse`).
"""
