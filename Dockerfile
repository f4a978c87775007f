# Gateway image: builds rbdgw against Debian 12's Ceph (pacific) libraries.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends librbd-dev librados-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -tags pacific -o /out/rbdgw ./gateway/cmd/rbdgw

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends librbd1 librados2 ceph-common ca-certificates \
	&& rm -rf /var/lib/apt/lists/*
COPY --from=build /out/rbdgw /usr/local/bin/rbdgw
EXPOSE 3260
ENTRYPOINT ["/usr/local/bin/rbdgw"]
CMD ["-config", "/etc/rbdgw/gateway.yaml"]
