/*
 * fcgi_response.h - a FastCGI response written on a connected socket:
 * STDOUT records, the empty STDOUT that ends the stream, END_REQUEST.
 *
 * The one writer of every answer a worker or an attached job sends (the
 * watcher's one-send trigger 200 is dt_fcgi_short_response_encode()).  Sends
 * block: accepted sockets are blocking, and only the worker or job thread
 * that owns the connection writes.  The encoders are pure and tested
 * directly; the writer adds nothing but sendmsg().
 */
#ifndef DETACH_FCGI_RESPONSE_H
#define DETACH_FCGI_RESPONSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "fcgi/fcgi_record.h"

/* The empty STDOUT and END_REQUEST, back to back. */
#define FCGI_RESPONSE_END_SIZE (2 * FCGI_RECORD_HEADER_SIZE + FCGI_RECORD_END_BODY_SIZE)

/*
 * The header of the next STDOUT record for remaining bytes of content:
 * it carries min(remaining, 65535) bytes, returned, followed by *padding
 * zero bytes that round it to 8.  remaining 0 gives the empty record.
 */
size_t dt_fcgi_stdout_header_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE], uint16_t request_id,
                                 size_t remaining, uint8_t *padding);

/* The end of a response: an empty STDOUT, then END_REQUEST. */
void dt_fcgi_response_end_encode(uint8_t out[FCGI_RESPONSE_END_SIZE], uint16_t request_id,
                              uint32_t app_status, uint8_t protocol_status);

struct fcgi_response {
    int fd;                    /* borrowed: the connection owns it */
    uint16_t request_id;
    int keep_connection;       /* asked (FCGI_KEEP_CONN) and not refused */
    int ended;                 /* END_REQUEST sent, or the writer failed */
    int failed;                /* a send failed: nothing more goes out */
};

/* A response to the request id on fd; keep_connection as BEGIN_REQUEST asked. */
void dt_fcgi_response_begin(struct fcgi_response *response, int fd, uint16_t request_id,
                         int keep_connection);

/*
 * Sends the parts, in order, as STDOUT content (records of at most 65535
 * bytes, padded), flushed before it returns.  With last set, the end of
 * the response goes out in the same sendmsg() calls.  0, or -1 with errno
 * (EPIPE, ECONNRESET...) when the peer is gone; the response is then
 * failed and will not keep the connection.
 */
int dt_fcgi_response_writev(struct fcgi_response *response, const struct iovec *parts, size_t count,
                         int last);
int dt_fcgi_response_write(struct fcgi_response *response, const void *data, size_t length);
/* A whole response in one go: content, end of stream, END_REQUEST. */
int dt_fcgi_response_send_whole(struct fcgi_response *response, const void *data, size_t length);

void dt_fcgi_response_forbid_keepalive(struct fcgi_response *response);

/*
 * Ends the response unless it already ended (empty STDOUT, END_REQUEST
 * with app status 0).  1 when the connection may carry the web server's
 * next request: it asked, nothing refused, every byte went out.
 */
int dt_fcgi_response_end(struct fcgi_response *response);

#endif
