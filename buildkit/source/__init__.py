"""What the chain's keys are computed from: the source tree, its ignore rules, git, CI.

- `hashing`: the digest of a tree (the kept files, by content), fast when warm thanks to
  `digestcache` (stat-validated per-file digests) and, under `imgbuild server`, `treewatch`;
- `dockerignore`: .dockerignore rules, the way Docker applies them;
- `keys`: a layer's content key from its parent's key and its inputs;
- `gitinfo`: commit and branch from git; `buildenv`: what CodeBuild's CODEBUILD_* say.
"""
