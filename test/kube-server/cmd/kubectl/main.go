// Command kubectl is the upstream kubectl, built from the module proxy at the
// API server's version, so that tests need no kubectl on PATH. Its main is
// k8s.io/kubernetes' cmd/kubectl, which Go cannot import (package main).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// the client auth plugins (exec, OIDC), as upstream registers them
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	// -v is read before the command is built, so that klog is set for what
	// building it does (plugins, .kuberc), as upstream does.
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
