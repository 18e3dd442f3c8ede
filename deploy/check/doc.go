// Package check validates postie's deployment files in deploy/: the Helm chart rendered with
// Helm's own Go library for each way of running it, every manifest checked against the
// Kubernetes OpenAPI schemas by kubeconform, the Compose file loaded by the compose-spec loader,
// the systemd unit and the Dockerfile. It is a Go module of its own so that Helm, kubeconform and
// the Kubernetes libraries stay out of postie's go.mod and binary; scripts/test.sh runs its tests.
package check
