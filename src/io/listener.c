/*
 * listener.c - binding, inheriting and accepting.
 *
 * Accepting happens on the watcher thread, non-blocking, so a new
 * connection costs one accept4() and joins the epoll set; no thread waits
 * in accept() and none waits for a silent client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log.h"
#include "io/connection.h"
#include "io/listener.h"

#define container_of(pointer, type, member) \
    ((type *)((char *)(pointer) - offsetof(type, member)))

#define BACKLOG 1024
#define SYSTEMD_FIRST_FD 3

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

static int is_listening_socket(int fd)
{
    int accepting = 0;
    socklen_t length = sizeof(accepting);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 && accepting;
}

/* systemd socket activation: LISTEN_PID is us and LISTEN_FDS >= 1. */
static int systemd_socket(void)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");

    if (!pid || !fds || atol(pid) != (long)getpid() || atoi(fds) < 1)
        return -1;
    return SYSTEMD_FIRST_FD;
}

static int open_inherited(struct listener *listener)
{
    int fd = systemd_socket();

    if (fd < 0)
        fd = 0;
    if (!is_listening_socket(fd)) {
        errno = ENOTSOCK;
        return dt_error_set("no listen address given and fd %d is not a listening socket "
                         "(use --listen, spawn-fcgi or systemd socket activation)", fd);
    }
    if (set_nonblocking(fd) < 0)
        return dt_error_set("inherited socket fd %d: %s", fd, strerror(errno));
    /* Keep it out of job processes. */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    listener->fd = fd;
    return 0;
}

/* A socket file nobody accepts on is stale and may go; a live one may not. */
static int remove_stale_socket(const char *path, const struct sockaddr_un *address)
{
    struct stat info;
    int probe, rc;

    if (lstat(path, &info) < 0)
        return errno == ENOENT ? 0 : dt_error_set("unix:%s: %s", path, strerror(errno));
    if (!S_ISSOCK(info.st_mode)) {
        errno = EEXIST;
        return dt_error_set("unix:%s: exists and is not a socket", path);
    }
    probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return dt_error_set("socket: %s", strerror(errno));
    rc = connect(probe, (const struct sockaddr *)address, sizeof(*address));
    close(probe);
    if (rc == 0) {
        errno = EADDRINUSE;
        return dt_error_set("unix:%s: another server is listening there", path);
    }
    if (unlink(path) < 0 && errno != ENOENT)
        return dt_error_set("unix:%s: removing stale socket: %s", path, strerror(errno));
    return 0;
}

/* "user" or "user:group" (the user's group when none is named). */
static int set_owner(const char *path, const char *owner)
{
    char user[256];
    const char *colon = strchr(owner, ':');
    size_t length = colon ? (size_t)(colon - owner) : strlen(owner);
    struct passwd *entry;
    gid_t group;

    if (length >= sizeof(user)) {
        errno = EINVAL;
        return dt_error_set("unix:%s: socket owner \"%s\" is too long", path, owner);
    }
    memcpy(user, owner, length);
    user[length] = '\0';
    entry = getpwnam(user);
    if (!entry) {
        errno = ENOENT;
        return dt_error_set("unix:%s: socket owner: no user \"%s\"", path, user);
    }
    group = entry->pw_gid;
    if (colon) {
        struct group *named = getgrnam(colon + 1);
        if (!named) {
            errno = ENOENT;
            return dt_error_set("unix:%s: socket owner: no group \"%s\"", path, colon + 1);
        }
        group = named->gr_gid;
    }
    if (chown(path, entry->pw_uid, group) < 0)
        return dt_error_set("unix:%s: chown %s: %s", path, owner, strerror(errno));
    return 0;
}

static int open_unix(struct listener *listener, const char *path, unsigned socket_mode,
                     const char *socket_owner)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    int fd;

    if (path[0] != '/' || strlen(path) >= sizeof(address.sun_path)) {
        errno = EINVAL;
        return dt_error_set("unix:%s: the path must be absolute and under %zu bytes",
                         path, sizeof(address.sun_path));
    }
    strcpy(address.sun_path, path);
    if (remove_stale_socket(path, &address) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return dt_error_set("socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&address, sizeof(address)) < 0) {
        dt_error_set("unix:%s: bind: %s", path, strerror(errno));
        goto fail;
    }
    listener->unix_path = strdup(path);
    if (!listener->unix_path) {
        dt_error_set("out of memory");
        goto fail_unlink;
    }
    if (chmod(path, socket_mode) < 0) {
        dt_error_set("unix:%s: chmod %o: %s", path, socket_mode, strerror(errno));
        goto fail_unlink;
    }
    if (socket_owner && set_owner(path, socket_owner) < 0)
        goto fail_unlink;
    if (listen(fd, BACKLOG) < 0) {
        dt_error_set("unix:%s: listen: %s", path, strerror(errno));
        goto fail_unlink;
    }
    listener->fd = fd;
    return 0;
fail_unlink:
    unlink(path);
    free(listener->unix_path);
    listener->unix_path = NULL;
fail:
    close(fd);
    return -1;
}

/* "1.2.3.4:9000" or "[::1]:9000" */
static int open_inet(struct listener *listener, const char *address)
{
    struct sockaddr_storage storage;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&storage;
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *port_text;
    char *end;
    long port;
    socklen_t length;
    int fd, one = 1;

    memset(&storage, 0, sizeof(storage));
    if (address[0] == '[') {
        const char *close_bracket = strchr(address, ']');
        if (!close_bracket || close_bracket[1] != ':' ||
            (size_t)(close_bracket - address - 1) >= sizeof(host))
            goto bad;
        memcpy(host, address + 1, (size_t)(close_bracket - address - 1));
        host[close_bracket - address - 1] = '\0';
        port_text = close_bracket + 2;
    } else {
        colon = strrchr(address, ':');
        if (!colon || (size_t)(colon - address) >= sizeof(host))
            goto bad;
        memcpy(host, address, (size_t)(colon - address));
        host[colon - address] = '\0';
        port_text = colon + 1;
    }
    errno = 0;
    port = strtol(port_text, &end, 10);
    if (errno || *end || end == port_text || port < 1 || port > 65535)
        goto bad;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        length = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        length = sizeof(*v6);
    } else {
        goto bad;
    }
    fd = socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return dt_error_set("socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&storage, length) < 0) {
        dt_error_set("%s: bind: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, BACKLOG) < 0) {
        dt_error_set("%s: listen: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    listener->fd = fd;
    return 0;
bad:
    errno = EINVAL;
    return dt_error_set("listen address \"%s\": expected unix:/path, IPv4:port or [IPv6]:port",
                     address);
}

int dt_listener_open(struct listener *listener, const char *address, unsigned socket_mode,
                  const char *socket_owner)
{
    memset(listener, 0, sizeof(*listener));
    listener->fd = -1;
    if (!address)
        return open_inherited(listener);
    if (strncmp(address, "unix:", 5) == 0)
        return open_unix(listener, address + 5, socket_mode, socket_owner);
    return open_inet(listener, address);
}

static void accept_ready(struct watch *watch, uint32_t events);

static void pause_over(struct timer *timer)
{
    struct listener *listener = container_of(timer, struct listener, pause);

    if (dt_watcher_watch_locked(listener->io->watcher, &listener->watch, EPOLLIN) < 0)
        dt_log_line(LOG_ERROR, "listen_resume", "error=\"%s\"", strerror(errno));
}

/*
 * Is there room for one more connection?  At the cap the new one is
 * closed at once: the peer sees the connection closed before any answer
 * (a web server answers its client 502 and may retry), and the
 * descriptors kept for jobs stay free.  Closing beats leaving it in the
 * backlog, where a web server would wait out its whole read timeout.
 * Logged once as the cap is reached, and again only after the count fell
 * well below it (3/4), so a server at its cap does not log per connection.
 */
static int room_for_connection(struct listener *listener)
{
    unsigned long long open = atomic_load(&listener->io->connections);

    if (!listener->max_connections)
        return 1;
    if (open < listener->max_connections) {
        if (listener->capped && open < listener->max_connections / 4 * 3 + 1) {
            dt_log_line(LOG_INFO, "connections_below_cap", "open=%llu max_connections=%llu "
                     "closed_at_cap=%llu", open, listener->max_connections, listener->refused);
            listener->capped = 0;
            listener->refused = 0;
        }
        return 1;
    }
    listener->refused++;
    if (!listener->capped) {
        dt_log_line(LOG_ERROR, "connections_capped", "open=%llu max_connections=%llu "
                 "reason=\"the rest of the descriptors are kept for jobs; new connections "
                 "are closed at once\"", open, listener->max_connections);
        listener->capped = 1;
    }
    return 0;
}

static void accept_ready(struct watch *watch, uint32_t events)
{
    struct listener *listener = container_of(watch, struct listener, watch);
    struct io_context *io = listener->io;

    /* Bounded, so a connection flood cannot starve the deadlines. */
    for (int i = 0; i < 256; i++) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            if (!room_for_connection(listener)) {
                close(fd);
                continue;
            }
            atomic_fetch_add(&io->connections, 1);   /* connection.c counts it down */
            dt_connection_accepted_locked(io, fd);
            continue;
        }
        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
            return;
        dt_log_line(LOG_ERROR, "accept", "error=\"%s\"", strerror(errno));
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The backlog keeps the clients; retrying at once would spin. */
            dt_watcher_unwatch_locked(io->watcher, &listener->watch);
            dt_watcher_arm_locked(io->watcher, &listener->pause, 100);
        }
        return;
    }
}

int dt_listener_start(struct listener *listener, struct io_context *io,
                   unsigned long long max_connections)
{
    int one = 1;

    listener->io = io;
    listener->max_connections = max_connections;
    /* Accepted TCP sockets inherit TCP_NODELAY on Linux: acks go out at once. */
    setsockopt(listener->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    dt_watch_init(&listener->watch, listener->fd, accept_ready);
    dt_timer_init(&listener->pause, pause_over);
    return dt_watcher_watch(io->watcher, &listener->watch, EPOLLIN);
}

void dt_listener_close(struct listener *listener)
{
    if (listener->io) {
        dt_watcher_lock(listener->io->watcher);
        dt_watcher_unwatch_locked(listener->io->watcher, &listener->watch);
        dt_watcher_disarm_locked(listener->io->watcher, &listener->pause);
        dt_watcher_unlock(listener->io->watcher);
    }
    if (listener->fd >= 0)
        close(listener->fd);
    listener->fd = -1;
    if (listener->unix_path) {
        unlink(listener->unix_path);
        free(listener->unix_path);
        listener->unix_path = NULL;
    }
}
