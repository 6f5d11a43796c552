"""Container networking: bridges, IPAM, NAT/port publishing, embedded DNS, per-container files.

The daemon holds one `service.NetworkService` (records, predefined networks,
each container's sandbox, the /networks API's backend) over
`controller.NetworkController` (see that module for the call sequence at
daemon start, network create, container start/stop).  Every function that touches the kernel takes
`host_netns` (a netns file; None: the daemon's own namespace), so the whole
layer runs, and is tested, inside a namespace standing in for the host.

Modules, one job each:
  netns.py           persistent netns files for containers; entering a netns on one thread
  bridge.py          bridge create/delete, veth connect/disconnect, ip_forward/route_localnet
  host_routes.py     subnets the host already uses (for IPAM to avoid)
  ipam.py            subnet and address choice;  ipam_store.py  its persistence (metadata DB or JSON)
  iptables.py        the iptables CLI in a netns: chains, hooks, tagged rules
  firewall_rules.py  the rules of a network / published port, as data
  firewall.py        Berth's chains: install (restore), per network/endpoint rules, uninstall
  port_spec.py       `-p` specs and API PortBindings;  portmap.py  publishing them
  userland_proxy.py  asyncio TCP/UDP relay for loopback destinations
  dns_wire.py        DNS messages;  dns.py  the embedded resolver per network
  hosts_files.py     /etc/hosts, /etc/resolv.conf, /etc/hostname contents
  inspect_json.py    EndpointSettings / Ports / IPAM in the Engine API's shapes
  controller.py      NetworkController: bridges, endpoints, ports and DNS tied together
  records.py         the daemon's network and container-endpoint records (metadata DB)
  service.py         NetworkService: what berthd calls (containers' sandboxes, the networks API, restore)
  errors.py          NotFound / Conflict (PortConflict, PoolExhausted) / InvalidParameter / FirewallError
"""
