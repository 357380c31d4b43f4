/*
 * listener.h - the listening socket: unix, IPv4, IPv6 or inherited.
 */
#ifndef DETACH_LISTENER_H
#define DETACH_LISTENER_H

#include "io/watcher.h"

struct io_context;

struct listener {
    int fd;
    char *unix_path;        /* set when we created the socket file */
    struct io_context *io;
    struct watch watch;
    struct timer pause;     /* out of descriptors: accept again later */
    /* Open connections allowed at once (fd_budget.h); 0: no cap.  Past
     * it a new connection is closed at once, so idle connections never
     * take the descriptors kept for jobs. */
    unsigned long long max_connections;
    int capped;             /* logged the cap; again once well below it */
    unsigned long long refused;   /* connections closed at the cap, this episode */
};

/*
 * address: "unix:/path", "1.2.3.4:9000", "[::1]:9000", or NULL for a
 * listening socket inherited on fd 0 (spawn-fcgi) or from systemd
 * (LISTEN_FDS).  A stale unix socket file is replaced; a live one is not.
 */
int dt_listener_open(struct listener *listener, const char *address, unsigned socket_mode,
                  const char *socket_owner);
/* Starts accepting on the watcher thread; max_connections as above. */
int dt_listener_start(struct listener *listener, struct io_context *io,
                   unsigned long long max_connections);
void dt_listener_close(struct listener *listener);

#endif
