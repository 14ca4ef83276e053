# Thin wrappers; the scripts are the real commands (see README).
.PHONY: up test bench
up:
	./scripts/up.sh
test:
	./scripts/test.sh
bench:
	./scripts/bench.sh
