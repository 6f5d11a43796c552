"""Container networking: bridges, IPAM, NAT/port publishing, embedded DNS, per-container files.

A library the daemon drives; nothing here keeps hidden global state.  Every
function that touches the kernel takes `host_netns` (a netns file; None: the
daemon's own namespace) so the whole layer can run, and be tested, inside a
namespace standing in for the host.
"""
