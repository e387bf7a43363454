"""Running the chain: plan, build what is stale in order, push, tag, record.

- `pipeline`: the main job (`imgbuild <layer> [--push]`), layer by layer;
- `underlays`: builds the app's assets (or pulls them), bulk and snapshot images (applayer/
  decides them);
- `staging`: writes each build's Dockerfile and assembled contexts under the cache dir;
- `pushing`: pushes content tags (skipping what the registry has), then moves the tags;
- `promote`: copies a built chain to another registry by digest, without rebuilding;
- `access`: registry credentials and clients (ECR or a plain registry), ECR repositories;
- `secrets`: build secrets to BuildKit without argv, logs or layers;
- `summary`: the run's JSON document.
"""
