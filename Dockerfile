# syntax=docker/dockerfile:1
# One image for all four services; pick the service with SERVICE (ingest, query-api,
# scorer, segmenter) at run time — docker-compose.yml sets it per service.
#   docker build -t pstream-app .
#   docker run --rm -e SERVICE=ingest -p 8080:8080 pstream-app
FROM node:20

ENV COREPACK_INTEGRITY_KEYS=0 \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    CI=true

WORKDIR /app
RUN corepack enable

# Manifests first so the dependency layer is reused when only sources change; pnpm needs the
# patches its lockfile names (patches/, pnpm patchedDependencies) even to fetch.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY patches ./patches
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm fetch --store-dir /pnpm/store

COPY . .
# devDependencies are kept on purpose: the services run TypeScript with tsx.
RUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \
    pnpm install --frozen-lockfile --offline --store-dir /pnpm/store

ENV SERVICE=ingest
EXPOSE 8080 8081 8082 8083
CMD ["sh", "-c", "exec pnpm --filter \"@pstream/$SERVICE\" start"]
