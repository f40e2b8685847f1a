//! `peers`: runs every framework binary (`peer-dfdx`, `peer-candle`, `peer-burn`) that was built
//! next to it, each once per thread count, and writes one JSON and one Markdown report.
fn main() {
    staticnet_peers::peers_main();
}
