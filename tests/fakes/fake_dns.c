/* fake_dns.so: an LD_PRELOAD shim for tests that overrides getaddrinfo().
 * When TG_FAKE_DNS="name=ip:port,name2=[v6]:port,..." names the host asked for
 * (case-insensitive), the answer is that one address and port; any other host
 * goes to the real getaddrinfo. Lets a test reach a fake vendor on loopback
 * under the vendor's real host name, with the production binary unchanged.
 * The answer is one malloc'ed block, as glibc's freeaddrinfo() expects. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

typedef int (*getaddrinfo_fn)(const char*, const char*, const struct addrinfo*, struct addrinfo**);

enum { kMaxEntry = 512 };

/* Finds `node` in the map; fills `ip` and `port` (0 if the entry has none). */
static int lookup(const char* map, const char* node, char* ip, size_t ip_size, long* port) {
  size_t node_len = strlen(node);
  const char* p = map;
  while (*p) {
    const char* end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char* eq = memchr(p, '=', len);
    if (eq && (size_t)(eq - p) == node_len && strncasecmp(p, node, node_len) == 0 && len < kMaxEntry) {
      char value[kMaxEntry];
      size_t vlen = len - (size_t)(eq + 1 - p);
      memcpy(value, eq + 1, vlen);
      value[vlen] = '\0';
      char* addr = value;
      char* colon = NULL;
      if (addr[0] == '[') {
        char* close = strchr(addr, ']');
        if (!close) return 0;
        *close = '\0';
        addr++;
        if (close[1] == ':') colon = close + 1;
      } else {
        colon = strrchr(addr, ':');
        if (colon) *colon = '\0';
      }
      *port = colon ? strtol(colon + 1, NULL, 10) : 0;
      if (strlen(addr) >= ip_size) return 0;
      strcpy(ip, addr);
      return 1;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                struct addrinfo** res) {
  static getaddrinfo_fn real = NULL;
  if (!real) real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  const char* map = getenv("TG_FAKE_DNS");
  char ip[INET6_ADDRSTRLEN];
  long port = 0;
  if (!node || !map || !lookup(map, node, ip, sizeof ip, &port)) {
    return real(node, service, hints, res);
  }
  if (port <= 0 && service) port = strtol(service, NULL, 10);
  if (port < 0 || port > 65535) return EAI_SERVICE;
  int family = hints ? hints->ai_family : AF_UNSPEC;
  struct addrinfo* ai = calloc(1, sizeof(struct addrinfo) + sizeof(struct sockaddr_storage));
  if (!ai) return EAI_MEMORY;
  struct sockaddr_storage* ss = (struct sockaddr_storage*)(ai + 1);
  struct sockaddr_in* a4 = (struct sockaddr_in*)ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)ss;
  if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1 && (family == AF_UNSPEC || family == AF_INET)) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((unsigned short)port);
    ai->ai_family = AF_INET;
    ai->ai_addrlen = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1 &&
             (family == AF_UNSPEC || family == AF_INET6)) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)port);
    ai->ai_family = AF_INET6;
    ai->ai_addrlen = sizeof(struct sockaddr_in6);
  } else {
    free(ai);
    return EAI_NONAME;
  }
  ai->ai_socktype = hints && hints->ai_socktype ? hints->ai_socktype : SOCK_STREAM;
  ai->ai_protocol = hints && hints->ai_protocol ? hints->ai_protocol : IPPROTO_TCP;
  ai->ai_addr = (struct sockaddr*)ss;
  ai->ai_canonname = NULL;
  ai->ai_next = NULL;
  *res = ai;
  return 0;
}
