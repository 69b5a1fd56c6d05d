// Command etcd is upstream etcd at the version the API server is built
// against (Debian's etcd 3.4 is too old for current API servers).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
