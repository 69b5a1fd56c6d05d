// The prometheus-operator CRDs that the chart's optional objects need
// (ServiceMonitor, PrometheusRule), for the test API server: ../build copies
// them from this release's module zip (example/prometheus-operator-crd/, the
// files upstream generates with controller-gen and installs), whose hash
// go.sum pins. No Go package of it is imported, so `go mod tidy` would drop
// the requirement: do not tidy this module. v0.85.0 is the newest release of
// the root module that the Go module proxy serves (later ones answer 403).
module xdplb.test/kube-server/crds

go 1.26.0

require (
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
