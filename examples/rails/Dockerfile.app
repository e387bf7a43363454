# The Rails example's app image: imgbuild's default app Dockerfile (images/app/Dockerfile) plus
# RAILS_ENV=production and the assets precompiled in this layer.
# TODO(issue 15): app.assets precompiles in an image of its own, keyed on the asset inputs, and
# the production defaults (RAILS_ENV, ...) move into imgbuild's app image; then this file and
# `app.dockerfile` in imgbuild.yaml go. (Rails' .dockerignore keeps /Dockerfile* out of the image.)
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ENV RAILS_ENV=production
COPY . /app/
ARG APP_USER=app
# As root, before USER: public/ belongs to root. The precompile is skipped when imgbuild's assets
# image (app.assets) already put the compiled files under the source. What it leaves in tmp/
# goes: its cache, and the throw-away secret SECRET_KEY_BASE_DUMMY makes. tmp/ and log/ come
# back root's from the context (Rails' .dockerignore keeps their .keep files, and COPY gives the
# directories the context's owner): the app user gets them back.
RUN if [ ! -f public/assets/.manifest.json ]; then \
      SECRET_KEY_BASE_DUMMY=1 bin/rails assets:precompile && rm -rf tmp/cache tmp/local_secret.txt; \
    fi \
 && chown -R "$APP_USER:$APP_USER" tmp log
USER ${APP_USER}
ARG APP_COMMAND="bundle exec rails server -b 0.0.0.0"
ARG APP_PORT=3000
ENV APP_COMMAND=${APP_COMMAND} PORT=${APP_PORT}
EXPOSE ${APP_PORT}
# `exec` makes the command PID 1 so it receives signals.
CMD ["/bin/sh", "-c", "exec $APP_COMMAND"]
