// The little of rtnetlink and raw sockets the control plane needs: neighbour
// and address dumps, address add/delete, the routes a director publishes for
// a routing daemon (a table of its own), and the announcements a director
// sends when it takes a VIP (gratuitous ARP, unsolicited neighbour advert).
// Plain C over sockets; every function returns 0 or a negative errno, and a
// netlink request that gets no reply in time returns -ETIMEDOUT.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace netlink {

// How long one recv waits for the kernel's reply, and a whole request (a
// dump is many replies) at most.
constexpr std::chrono::seconds kReplyTimeout{2};
constexpr std::chrono::seconds kRequestDeadline{10};

struct Neighbour {
  uint8_t family;  // 4 or 6
  uint8_t address[16];
  bool has_mac;
  uint8_t mac[6];
  uint16_t state;  // NUD_* bits
};

struct Address {
  uint8_t family;
  uint8_t address[16];
  uint8_t prefix_length;
};

struct Route {
  uint8_t family;
  uint8_t dst[16];
  uint8_t prefix_length;
  uint32_t table;
  uint8_t protocol;  // RTPROT_*: who added it
  int ifindex;       // RTA_OIF, 0 if none
};

int DumpNeighbours(int ifindex, std::vector<Neighbour> &out);

// Neighbour changes as the kernel announces them (RTNLGRP_NEIGH), instead of
// polling the table: a non-blocking socket subscribed to the group.
struct NeighbourEvent {
  int ifindex;
  bool deleted;  // RTM_DELNEIGH
  Neighbour n;
};
int OpenNeighbourEvents();  // the socket's fd, or a negative errno
// Reads every event queued on fd into out; 0 once none is left, -ENOBUFS
// when the kernel dropped some (the socket's buffer overflowed: dump the
// table again), or another negative errno.
int ReadNeighbourEvents(int fd, std::vector<NeighbourEvent> &out);
int DumpAddresses(int ifindex, std::vector<Address> &out);
int AddAddress(int ifindex, uint8_t family, const uint8_t *address, uint8_t prefix_length);
int DeleteAddress(int ifindex, uint8_t family, const uint8_t *address, uint8_t prefix_length);
// The unicast routes of one table (both families). A route is added as
// `dst/prefix dev ifindex scope link proto protocol table table`.
int DumpRoutes(uint32_t table, std::vector<Route> &out);
int AddRoute(uint32_t table, uint8_t protocol, int ifindex, uint8_t family, const uint8_t *dst, uint8_t prefix_length);
int DeleteRoute(uint32_t table, uint8_t protocol, int ifindex, uint8_t family, const uint8_t *dst, uint8_t prefix_length);
int SendGratuitousArp(int ifindex, const uint8_t *mac, const uint8_t *ipv4);
int SendUnsolicitedNa(int ifindex, const uint8_t *mac, const uint8_t *ipv6);

}  // namespace netlink
