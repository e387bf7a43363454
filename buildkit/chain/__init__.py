"""The chain ruby → base → app: what each layer is, and what to do about it.

- `model`: LayerSpec (one layer's key, image, Dockerfile, inputs), LayerPlan (up to date or
  build, and why), LayerOutcome (what a run did), RunOptions (what it was asked);
- `layers`: the three specs from the config; a layer's key covers its parent's key, so a
  change rebuilds its layer and those above it, never below;
- `plan`: up to date when the key's image is in the daemon or the registry, else build, with
  the reasons read from the last record (`state`);
- `labels`: the labels every image carries; `tagpolicy`: which tags each image gets.

No builds and no pushes here: run/ does those. plan asks the engine only whether images exist.
"""
