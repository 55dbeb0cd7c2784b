# syntax=docker/dockerfile:1
#
# casd container image: a static casd binary on distroless, running as the
# image's non-root user (uid 65532), with its repo on the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --always --dirty) -t casd .   # or: make docker
#   docker volume create casd-data
#   docker run --rm -v casd-data:/data casd init --profile=server              # once
#   docker run -d --name casd -v casd-data:/data \
#       -p 4001:4001/tcp -p 4001:4001/udp -p 4002:4002/tcp casd                # runs `casd daemon`
#   docker exec casd casd <command> ...                                        # talk to it

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
# The same command as `make build`.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /out/casd ./cmd/casd
# The volume's mount point, owned by the runtime user so that a fresh named
# volume (which copies it) is writable; distroless has no shell to mkdir it.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0-dev
LABEL org.opencontainers.image.title="casd" \
      org.opencontainers.image.description="peer-to-peer, content-addressed, encrypted storage daemon" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/casd /usr/local/bin/casd
COPY --from=build --chown=65532:65532 /out/data /data
ENV CASD_PATH=/data/casd
VOLUME /data
# libp2p: TCP and QUIC on 4001, WebSocket on 4002. The HTTP API listens on a
# unix socket inside the repo, so it needs no port.
EXPOSE 4001/tcp 4001/udp 4002/tcp
USER nonroot:nonroot
ENTRYPOINT ["casd"]
CMD ["daemon"]
