SQLC_VERSION := v1.31.1
SQLC := $(shell go env GOPATH)/bin/sqlc

# The tests' Postgres image; build.sh makes it from Debian packages when no
# registry is reachable. Set it to postgres:17 where images can be pulled.
export HOOKRELAY_TEST_PG_IMAGE ?= hookrelay-postgres:15
export TESTCONTAINERS_RYUK_DISABLED ?= true
export TESTCONTAINERS_HOST_OVERRIDE ?= localhost

.PHONY: help
help: ## Show this help
	@grep -E '^[a-z/-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "%-14s %s\n", $$1, $$2}'

.PHONY: test-image
test-image: ## Build the tests' Postgres image unless it exists
	integration/postgres-image/build.sh

# The image's build context: the static binary, the machine's CA
# certificates and a user that is not root. Nothing is pulled.
.PHONY: image
image: ## Build the image hookrelay:latest from this checkout, pulling nothing
	rm -rf .image && mkdir .image
	CGO_ENABLED=0 go build -trimpath -buildvcs=auto -ldflags='-s -w' -o .image/hookrelay ./cmd/hookrelay
	cp /etc/ssl/certs/ca-certificates.crt .image/
	printf 'hookrelay:x:65532:65532:hookrelay:/:/sbin/nologin\n' > .image/passwd
	printf 'hookrelay:x:65532:\n' > .image/group
	cp Dockerfile .image/
	docker build -q -t hookrelay:latest .image
	rm -rf .image

.PHONY: test
test: test-image ## Run every test
	go test -count=1 ./...

.PHONY: test/race
test/race: test-image ## Run every test with the race detector
	go test -race -count=1 ./...

$(SQLC):
	go install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)

.PHONY: generate
generate: $(SQLC) ## Regenerate sqlc code from queries/ and schema/
	$(SQLC) generate

.PHONY: verify
verify: $(SQLC) verify-static ## Fail when generated code is stale, or code is unformatted or vetted badly
	$(SQLC) diff

.PHONY: verify-static
verify-static: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	go vet ./...
