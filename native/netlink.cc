#include "netlink.h"

#include <arpa/inet.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>

namespace netlink {
namespace {

// A rtnetlink socket for one request. Every recv waits at most
// kReplyTimeout, and a whole request at most kRequestDeadline: a kernel (or
// a namespace going away) that never answers, or a dump that never ends,
// gives -ETIMEDOUT instead of blocking the event loop for good.
class Socket {
 public:
  Socket() {
    fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd_ < 0) {
      err_ = -errno;
      return;
    }
    timeval tv = {kReplyTimeout.count(), 0};
    sockaddr_nl sa = {};
    sa.nl_family = AF_NETLINK;
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
      err_ = -errno;
      close(fd_);
      fd_ = -1;
    }
  }
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;

  // Sends one request and reads until DONE (dump) or the ACK; each data
  // message goes to on_message. Returns 0 or a negative errno: the kernel's,
  // -ETIMEDOUT, or -EBADMSG / -EMSGSIZE for a reply it cannot parse.
  int Request(nlmsghdr *req, const std::function<void(nlmsghdr *)> &on_message) {
    if (fd_ < 0) return err_;
    req->nlmsg_seq = ++seq_;
    if (send(fd_, req, req->nlmsg_len, 0) < 0) return -errno;
    const auto deadline = std::chrono::steady_clock::now() + kRequestDeadline;
    std::vector<char> buf(65536);
    for (;;) {
      if (std::chrono::steady_clock::now() > deadline) return -ETIMEDOUT;
      iovec iov = {buf.data(), buf.size()};
      msghdr msg = {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      ssize_t n = recvmsg(fd_, &msg, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -ETIMEDOUT;  // SO_RCVTIMEO
        return -errno;
      }
      if (msg.msg_flags & MSG_TRUNC) return -EMSGSIZE;
      if (n == 0) return -EBADMSG;
      auto *h = reinterpret_cast<nlmsghdr *>(buf.data());
      for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_seq != seq_) continue;
        if (h->nlmsg_type == NLMSG_DONE) return 0;
        if (h->nlmsg_type == NLMSG_ERROR) {
          if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EBADMSG;
          auto *e = static_cast<nlmsgerr *>(NLMSG_DATA(h));
          return e->error;  // 0 is the ACK
        }
        on_message(h);
      }
      if (n != 0) return -EBADMSG;  // a partial message is left over
    }
  }

 private:
  int fd_ = -1;
  int err_ = -EBADF;
  uint32_t seq_ = 0;
};

void PutAttr(nlmsghdr *h, uint16_t type, const void *data, size_t len) {
  auto *rta = reinterpret_cast<rtattr *>(reinterpret_cast<char *>(h) + NLMSG_ALIGN(h->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

uint8_t ToFamily(int af) { return af == AF_INET ? 4 : 6; }
int ToAf(uint8_t family) { return family == 4 ? AF_INET : AF_INET6; }

int ChangeAddress(uint16_t type, uint16_t flags, int ifindex, uint8_t family, const uint8_t *address,
                  uint8_t prefix_length) {
  Socket s;
  struct {
    nlmsghdr h;
    ifaddrmsg ifa;
    char attrs[64];
  } req = {};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  req.ifa.ifa_family = ToAf(family);
  req.ifa.ifa_prefixlen = prefix_length;
  req.ifa.ifa_index = ifindex;
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  // A VIP moves between directors on purpose: duplicate address detection
  // would hold a new IPv6 VIP back (tentative) or disable it.
  if (family == 6) req.ifa.ifa_flags = IFA_F_NODAD;
  size_t len = family == 4 ? 4 : 16;
  PutAttr(&req.h, IFA_LOCAL, address, len);
  PutAttr(&req.h, IFA_ADDRESS, address, len);
  return s.Request(&req.h, [](nlmsghdr *) {});
}

int ChangeRoute(uint16_t type, uint16_t flags, uint32_t table, uint8_t protocol, int ifindex, uint8_t family,
                const uint8_t *dst, uint8_t prefix_length) {
  Socket s;
  struct {
    nlmsghdr h;
    rtmsg rt;
    char attrs[64];
  } req = {};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  req.rt.rtm_family = ToAf(family);
  req.rt.rtm_dst_len = prefix_length;
  req.rt.rtm_table = table < 256 ? table : RT_TABLE_UNSPEC;  // larger: RTA_TABLE only
  req.rt.rtm_protocol = protocol;
  req.rt.rtm_scope = RT_SCOPE_LINK;
  req.rt.rtm_type = RTN_UNICAST;
  PutAttr(&req.h, RTA_TABLE, &table, sizeof(table));
  PutAttr(&req.h, RTA_DST, dst, family == 4 ? 4 : 16);
  PutAttr(&req.h, RTA_OIF, &ifindex, sizeof(ifindex));
  return s.Request(&req.h, [](nlmsghdr *) {});
}

}  // namespace

namespace {

// Dumps every object of one kind (`type`, header struct Msg, all families)
// and calls each(header, first attribute, attributes' length) for every
// reply of `reply_type`.
template <typename Msg, typename Each>
int Dump(uint16_t type, uint16_t reply_type, Each each) {
  Socket s;
  struct {
    nlmsghdr h;
    Msg m;  // zeroed: family AF_UNSPEC
  } req = {};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(Msg));
  req.h.nlmsg_type = type;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  return s.Request(&req.h, [&](nlmsghdr *h) {
    if (h->nlmsg_type != reply_type) return;
    auto *m = static_cast<Msg *>(NLMSG_DATA(h));
    auto *first = reinterpret_cast<rtattr *>(reinterpret_cast<char *>(m) + NLMSG_ALIGN(sizeof(Msg)));
    each(m, first, int(NLMSG_PAYLOAD(h, sizeof(Msg))));
  });
}

}  // namespace

namespace {

// One neighbour message's entry; false if it has no IP destination.
bool ParseNeighbour(ndmsg *nd, rtattr *a, int len, Neighbour &n) {
  if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6) return false;
  n = {};
  n.family = ToFamily(nd->ndm_family);
  n.state = nd->ndm_state;
  bool has_dst = false;
  for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == NDA_DST && RTA_PAYLOAD(a) <= 16) {
      memcpy(n.address, RTA_DATA(a), RTA_PAYLOAD(a));
      has_dst = true;
    } else if (a->rta_type == NDA_LLADDR && RTA_PAYLOAD(a) == 6) {
      memcpy(n.mac, RTA_DATA(a), 6);
      n.has_mac = true;
    }
  }
  return has_dst;
}

}  // namespace

int DumpNeighbours(int ifindex, std::vector<Neighbour> &out) {
  return Dump<ndmsg>(RTM_GETNEIGH, RTM_NEWNEIGH, [&](ndmsg *nd, rtattr *a, int len) {
    Neighbour n;
    if (nd->ndm_ifindex == ifindex && ParseNeighbour(nd, a, len, n)) out.push_back(n);
  });
}

int OpenNeighbourEvents() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  sockaddr_nl sa = {};
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = 1u << (RTNLGRP_NEIGH - 1);
  int size = 1 << 20;  // a burst of changes (many backends at once) fits; beyond, ENOBUFS and a dump
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  if (bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  return fd;
}

int ReadNeighbourEvents(int fd, std::vector<NeighbourEvent> &out) {
  std::vector<char> buf(65536);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -errno;
    }
    auto *h = reinterpret_cast<nlmsghdr *>(buf.data());
    for (int left = int(n); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_type != RTM_NEWNEIGH && h->nlmsg_type != RTM_DELNEIGH) continue;
      if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) continue;
      auto *nd = static_cast<ndmsg *>(NLMSG_DATA(h));
      auto *first = reinterpret_cast<rtattr *>(reinterpret_cast<char *>(nd) + NLMSG_ALIGN(sizeof(ndmsg)));
      NeighbourEvent e = {};
      e.ifindex = nd->ndm_ifindex;
      e.deleted = h->nlmsg_type == RTM_DELNEIGH;
      if (ParseNeighbour(nd, first, int(NLMSG_PAYLOAD(h, sizeof(ndmsg))), e.n)) out.push_back(e);
    }
  }
}

int DumpAddresses(int ifindex, std::vector<Address> &out) {
  return Dump<ifaddrmsg>(RTM_GETADDR, RTM_NEWADDR, [&](ifaddrmsg *ifa, rtattr *r, int len) {
    if (int(ifa->ifa_index) != ifindex) return;
    Address a = {};
    a.family = ToFamily(ifa->ifa_family);
    a.prefix_length = ifa->ifa_prefixlen;
    bool found = false;
    for (; RTA_OK(r, len); r = RTA_NEXT(r, len)) {
      // IFA_LOCAL is the address on point-to-point links; else IFA_ADDRESS
      if ((r->rta_type == IFA_LOCAL || (r->rta_type == IFA_ADDRESS && !found)) && RTA_PAYLOAD(r) <= 16) {
        memcpy(a.address, RTA_DATA(r), RTA_PAYLOAD(r));
        found = true;
      }
    }
    if (found) out.push_back(a);
  });
}

int DumpRoutes(uint32_t table, std::vector<Route> &out) {
  return Dump<rtmsg>(RTM_GETROUTE, RTM_NEWROUTE, [&](rtmsg *rt, rtattr *a, int len) {
    if ((rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6) || rt->rtm_type != RTN_UNICAST) return;
    Route r = {};
    r.family = ToFamily(rt->rtm_family);
    r.prefix_length = rt->rtm_dst_len;
    r.table = rt->rtm_table;
    r.protocol = rt->rtm_protocol;
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) == 4) memcpy(&r.table, RTA_DATA(a), 4);
      else if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) <= 16) memcpy(r.dst, RTA_DATA(a), RTA_PAYLOAD(a));
      else if (a->rta_type == RTA_OIF && RTA_PAYLOAD(a) == 4) memcpy(&r.ifindex, RTA_DATA(a), 4);
    }
    if (r.table == table) out.push_back(r);
  });
}

int AddRoute(uint32_t table, uint8_t protocol, int ifindex, uint8_t family, const uint8_t *dst, uint8_t prefix_length) {
  return ChangeRoute(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, table, protocol, ifindex, family, dst, prefix_length);
}

int DeleteRoute(uint32_t table, uint8_t protocol, int ifindex, uint8_t family, const uint8_t *dst, uint8_t prefix_length) {
  return ChangeRoute(RTM_DELROUTE, 0, table, protocol, ifindex, family, dst, prefix_length);
}

int AddAddress(int ifindex, uint8_t family, const uint8_t *address, uint8_t prefix_length) {
  return ChangeAddress(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, ifindex, family, address, prefix_length);
}

int DeleteAddress(int ifindex, uint8_t family, const uint8_t *address, uint8_t prefix_length) {
  return ChangeAddress(RTM_DELADDR, 0, ifindex, family, address, prefix_length);
}

// One packet socket for every announcement, kept open: closing a packet
// socket waits for an RCU grace period (synchronize_net), ~13 ms here, so a
// socket per ARP made announcing 2,000 VIPs take 13 s (0.04 ms each with one
// socket). Protocol 0: it receives nothing, it only sends.
static int ArpSocket() {
  static int fd = -1;
  if (fd < 0) fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  return fd < 0 ? -errno : fd;
}

int SendGratuitousArp(int ifindex, const uint8_t *mac, const uint8_t *ipv4) {
  int fd = ArpSocket();
  if (fd < 0) return fd;
  uint8_t frame[42] = {};
  memset(frame, 0xff, 6);                 // broadcast
  memcpy(frame + 6, mac, 6);
  frame[12] = 0x08, frame[13] = 0x06;     // ARP
  frame[14] = 0x00, frame[15] = 0x01;     // Ethernet
  frame[16] = 0x08, frame[17] = 0x00;     // IPv4
  frame[18] = 6, frame[19] = 4;
  frame[20] = 0x00, frame[21] = 0x01;     // request: sender = target = VIP
  memcpy(frame + 22, mac, 6);
  memcpy(frame + 28, ipv4, 4);
  memcpy(frame + 38, ipv4, 4);
  sockaddr_ll to = {};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memset(to.sll_addr, 0xff, 6);
  return sendto(fd, frame, sizeof(frame), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to)) < 0 ? -errno : 0;
}

int SendUnsolicitedNa(int ifindex, const uint8_t *mac, const uint8_t *ipv6) {
  int fd = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (fd < 0) return -errno;
  int hops = 255;
  unsigned idx = ifindex;
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops));
  setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx));
  struct {
    nd_neighbor_advert na;
    uint8_t opt_type, opt_len, lladdr[6];
  } msg = {};
  msg.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  msg.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;  // the kernel fills the checksum
  memcpy(&msg.na.nd_na_target, ipv6, 16);
  msg.opt_type = ND_OPT_TARGET_LINKADDR;
  msg.opt_len = 1;
  memcpy(msg.lladdr, mac, 6);
  sockaddr_in6 to = {};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = ifindex;
  int rc = sendto(fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr *>(&to), sizeof(to)) < 0 ? -errno : 0;
  close(fd);
  return rc;
}

}  // namespace netlink
