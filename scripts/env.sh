# Sourced by the scripts: where xdplb's Node lives and how to reach it.
export XDPLB_NODE_VERSION=24.21.0
export XDPLB_NODE_DIR=/opt/xdplb/node
if [ -x "$XDPLB_NODE_DIR/node_modules/.bin/node" ]; then
  export PATH="$XDPLB_NODE_DIR/node_modules/.bin:$PATH"
fi
