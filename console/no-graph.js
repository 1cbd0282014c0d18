// Stand-in for the graph library when the build did not find it
// (console/node_modules missing: run scripts/setup.sh and rebuild).
window.ENGRAM_NO_GRAPH = true;
