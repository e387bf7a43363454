"""How the app layer is assembled, as pure decisions (no engine; run/ builds what they decide).

The app image is not one layer on the base. From the bottom:

    base image               <name>-base:<key>        ruby + OS packages + gems (the chain's base)
      └─ assets              <name>-app:assets-<key>  the output of `rails assets:precompile`, run
                                                      in a stage of its own; rebuilt only when an
                                                      asset input changes
           └─ bulk           <name>-app:bulk-<key>    images, fonts: one COPY per bulk path,
                                                      rebuilt only when a bulk file changes
                └─ snapshot  <name>-app:src-<key>     the app Dockerfile up to its `COPY . <dest>`,
                                                      from the whole context; local only, re-taken
                                                      rarely
                     └─ app  <name>-app:<key>         the same Dockerfile FROM the snapshot, with a
                                                      context of only the files changed since it

Each level is optional: without assets to precompile (`app.assets`) the bulk sits on the base;
without `app.bulk` paths holding files the snapshot sits on the assets image or the base;
without a qualifying Dockerfile (or with `app.delta: false`) the app is one plain build.

- `dockerfile`: reads the app Dockerfile (instructions, its single context COPY and the setup
  before it);
- `assets`: whether the app precompiles, the assets image's key and Dockerfile (`AssetsSpec`);
- `bulk`: which paths form the bulk image, its key and Dockerfile (`BulkSpec`);
- `snapshot`: when the app may build on a snapshot, and when to take a new one (`DeltaSpec`,
  `decide`), with the snapshot record kept in the cache dir.

chain.layers puts these into the app's LayerSpec; run.underlays builds (or pulls) the assets
image, builds the bulk and snapshot images, and run.staging writes their Dockerfiles and delta
contexts.
"""
