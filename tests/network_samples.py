"""Interface listings in the shape the system tools print them (issue 13, DST030/DST031).

MAC_IFCONFIG: macOS 15 `ifconfig` on a Mac with Ethernet (en0), Wi-Fi (en1) and two
Thunderbolt ports (en2, en3) joined in the Thunderbolt Bridge (bridge0), which has the
self-assigned link-local address macOS gives a bridge with a Thunderbolt peer.
MAC_PORTS: `networksetup -listallhardwareports` on the same Mac (mlx.distributed_config reads
"Thunderbolt N" ports from it). MAC_IFCONFIG_CONFIGURED: after `mlx.distributed_config --backend
ring --over thunderbolt` (bridge0 down, a /30 on en2). LINUX_IP: `ip -j addr` of this CI
machine's kind (loopback, a down ifb, eth0) plus a thunderbolt-net link enslaved to br0.
"""

MAC_IFCONFIG = """\
lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384
\toptions=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>
\tinet 127.0.0.1 netmask 0xff000000
\tinet6 ::1 prefixlen 128
\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1
\tnd6 options=201<PERFORMNUD,DAD>
gif0: flags=8010<POINTOPOINT,MULTICAST> mtu 1280
stf0: flags=0<> mtu 1280
anpi0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\toptions=400<CHANNEL_IO>
\tether 6a:1f:2e:3d:4c:5b
\tmedia: none
\tstatus: inactive
en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\toptions=50b<RXCSUM,TXCSUM,VLAN_HWTAGGING,AV,CHANNEL_IO>
\tether 3c:a6:f6:10:20:30
\tinet6 fe80::14d2:9a1b:7c3e:5f60%en0 prefixlen 64 secured scopeid 0xb
\tinet 192.168.1.23 netmask 0xffffff00 broadcast 192.168.1.255
\tnd6 options=201<PERFORMNUD,DAD>
\tmedia: autoselect (1000baseT <full-duplex,flow-control,energy-efficient-ethernet>)
\tstatus: active
en1: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\toptions=6460<TSO4,TSO6,CHANNEL_IO,PARTIAL_CSUM,ZEROINVERT_CSUM>
\tether 3c:a6:f6:10:20:31
\tinet6 fe80::8b1:4c2d:aa10:9e21%en1 prefixlen 64 secured scopeid 0xc
\tinet 192.168.1.57 netmask 0xffffff00 broadcast 192.168.1.255
\tnd6 options=201<PERFORMNUD,DAD>
\tmedia: autoselect
\tstatus: active
en2: flags=8963<UP,BROADCAST,SMART,RUNNING,PROMISC,SIMPLEX,MULTICAST> mtu 1500
\toptions=460<TSO4,TSO6,CHANNEL_IO>
\tether 36:e1:a8:40:50:60
\tmedia: autoselect <full-duplex>
\tstatus: active
en3: flags=8963<UP,BROADCAST,SMART,RUNNING,PROMISC,SIMPLEX,MULTICAST> mtu 1500
\toptions=460<TSO4,TSO6,CHANNEL_IO>
\tether 36:e1:a8:40:50:64
\tmedia: autoselect <full-duplex>
\tstatus: inactive
bridge0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500
\toptions=63<RXCSUM,TXCSUM,TSO4,TSO6>
\tether 36:e1:a8:40:50:60
\tinet6 fe80::34e1:a8ff:fe40:5060%bridge0 prefixlen 64 scopeid 0xe
\tinet 169.254.87.12 netmask 0xffff0000 broadcast 169.254.255.255
\tConfiguration:
\t\tid 0:0:0:0:0:0 priority 0 hellotime 0 fwddelay 0
\t\tmaxage 0 holdcnt 0 proto stp maxaddr 100 timeout 1200
\t\troot id 0:0:0:0:0:0 priority 0 ifcost 0 port 0
\t\tipfilter disabled flags 0x0
\tmember: en2 flags=3<LEARNING,DISCOVER>
\t        ifmaxaddr 0 port 9 priority 0 path cost 0
\tmember: en3 flags=3<LEARNING,DISCOVER>
\t        ifmaxaddr 0 port 10 priority 0 path cost 0
\tnd6 options=201<PERFORMNUD,DAD>
\tmedia: <unknown type>
\tstatus: active
utun0: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380
\tinet6 fe80::d2f1:6c43:2a9b:1c0e%utun0 prefixlen 64 scopeid 0xf
\tnd6 options=201<PERFORMNUD,DAD>
"""

MAC_PORTS = """\

Hardware Port: Ethernet
Device: en0
Ethernet Address: 3c:a6:f6:10:20:30

Hardware Port: Wi-Fi
Device: en1
Ethernet Address: 3c:a6:f6:10:20:31

Hardware Port: Thunderbolt Bridge
Device: bridge0
Ethernet Address: 36:e1:a8:40:50:60

Hardware Port: Thunderbolt 1
Device: en2
Ethernet Address: 36:e1:a8:40:50:60

Hardware Port: Thunderbolt 2
Device: en3
Ethernet Address: 36:e1:a8:40:50:64

VLAN Configurations
===================
"""

MAC_IFCONFIG_CONFIGURED = MAC_IFCONFIG.replace(
    "bridge0: flags=8863<UP,", "bridge0: flags=8822<"
).replace(
    "\tether 36:e1:a8:40:50:60\n\tmedia: autoselect <full-duplex>\n",
    "\tether 36:e1:a8:40:50:60\n\tinet 192.168.0.1 netmask 0xfffffffc broadcast 192.168.0.3\n"
    "\tmedia: autoselect <full-duplex>\n",
)

LINUX_IP = (
    '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,'
    '"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,'
    '"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00",'
    '"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host",'
    '"label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},'
    '{"family":"inet6","local":"::1","prefixlen":128,"scope":"host",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]},'
    '{"ifindex":2,"ifname":"ifb0","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop",'
    '"operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether",'
    '"address":"0e:b4:92:a8:d1:55","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},'
    '{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,'
    '"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff",'
    '"addr_info":[{"family":"inet","local":"10.20.0.5","prefixlen":24,'
    '"broadcast":"10.20.0.255","scope":"global","label":"eth0",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]},'
    '{"ifindex":5,"ifname":"thunderbolt0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1500,"qdisc":"pfifo_fast","master":"br0","operstate":"UP","group":"default",'
    '"txqlen":1000,"link_type":"ether","address":"02:5e:aa:10:20:30",'
    '"broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},'
    '{"ifindex":6,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],'
    '"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,'
    '"link_type":"ether","address":"02:5e:aa:10:20:30","broadcast":"ff:ff:ff:ff:ff:ff",'
    '"addr_info":[{"family":"inet","local":"10.99.0.1","prefixlen":30,'
    '"broadcast":"10.99.0.3","scope":"global","label":"br0",'
    '"valid_life_time":4294967295,"preferred_life_time":4294967295}]}]'
)
