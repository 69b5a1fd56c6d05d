// Command kube-apiserver is the upstream Kubernetes API server, built from the
// module proxy so that tests can run a real control plane on 127.0.0.1.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
