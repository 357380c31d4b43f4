/*
 * fcgi_response.c - STDOUT records and END_REQUEST, encoded and sent.
 *
 * Content is never copied: each record is its 8-byte header, slices of
 * the caller's parts and a few bytes of zero padding, gathered into one
 * sendmsg().  A batch holds up to BATCH_RECORDS records (over 1 MiB), so
 * a detach_write() of ordinary size is one system call, head and all.
 */
#include "fcgi/fcgi_response.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH_RECORDS 16
/* A record's header, its padding, and the slices of up to this many parts
 * it spans; a record that spans more is cut short (still valid FastCGI). */
#define SLICES_PER_RECORD 8
#define BATCH_IOVECS (BATCH_RECORDS * (SLICES_PER_RECORD + 2) + 1)

static const uint8_t zeros[8];

size_t dt_fcgi_stdout_header_encode(uint8_t out[FCGI_RECORD_HEADER_SIZE], uint16_t request_id,
                                 size_t remaining, uint8_t *padding)
{
    size_t length = remaining > FCGI_RECORD_MAX_CONTENT ? FCGI_RECORD_MAX_CONTENT : remaining;

    *padding = dt_fcgi_padding_for(length);
    dt_fcgi_header_encode(out, FCGI_TYPE_STDOUT, request_id, (uint16_t)length, *padding);
    return length;
}

void dt_fcgi_response_end_encode(uint8_t out[FCGI_RESPONSE_END_SIZE], uint16_t request_id,
                              uint32_t app_status, uint8_t protocol_status)
{
    dt_fcgi_header_encode(out, FCGI_TYPE_STDOUT, request_id, 0, 0);
    dt_fcgi_end_request_encode(out + FCGI_RECORD_HEADER_SIZE, request_id, app_status,
                            protocol_status);
}

void dt_fcgi_response_begin(struct fcgi_response *response, int fd, uint16_t request_id,
                         int keep_connection)
{
    response->fd = fd;
    response->request_id = request_id;
    response->keep_connection = keep_connection;
    response->ended = 0;
    response->failed = 0;
}

/* Sends every byte of the iovecs, blocking; advances them as it goes. */
static int send_all(int fd, struct iovec *iov, size_t count)
{
    struct msghdr message = { .msg_iov = iov, .msg_iovlen = count };

    while (message.msg_iovlen > 0) {
        ssize_t sent = sendmsg(fd, &message, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (message.msg_iovlen > 0 && (size_t)sent >= message.msg_iov->iov_len) {
            sent -= (ssize_t)message.msg_iov->iov_len;
            message.msg_iov++;
            message.msg_iovlen--;
        }
        if (sent > 0) {
            message.msg_iov->iov_base = (char *)message.msg_iov->iov_base + sent;
            message.msg_iov->iov_len -= (size_t)sent;
        }
    }
    return 0;
}

static int fail(struct fcgi_response *response)
{
    int saved = errno;

    response->failed = 1;
    response->ended = 1;
    errno = saved;
    return -1;
}

int dt_fcgi_response_writev(struct fcgi_response *response, const struct iovec *parts, size_t count,
                         int last)
{
    uint8_t headers[BATCH_RECORDS][FCGI_RECORD_HEADER_SIZE];
    uint8_t end[FCGI_RESPONSE_END_SIZE];
    struct iovec iov[BATCH_IOVECS];
    size_t part = 0, offset = 0, remaining = 0;

    if (response->ended) {
        errno = response->failed ? EPIPE : EINVAL;
        return -1;
    }
    for (size_t i = 0; i < count; i++)
        remaining += parts[i].iov_len;
    do {
        size_t used = 0, records = 0;

        while (remaining > 0 && records < BATCH_RECORDS) {
            uint8_t padding;
            size_t header_at = used++;
            size_t length = dt_fcgi_stdout_header_encode(headers[records], response->request_id,
                                                      remaining, &padding);
            size_t carried = 0;

            for (size_t slices = 0; carried < length && slices < SLICES_PER_RECORD; ) {
                size_t take = parts[part].iov_len - offset;
                if (take > length - carried)
                    take = length - carried;
                if (take > 0) {
                    iov[used].iov_base = (char *)parts[part].iov_base + offset;
                    iov[used++].iov_len = take;
                    slices++;
                }
                carried += take;
                offset += take;
                if (offset == parts[part].iov_len) {
                    part++;
                    offset = 0;
                }
            }
            if (carried < length)   /* too many small parts: a shorter record */
                length = dt_fcgi_stdout_header_encode(headers[records], response->request_id,
                                                   carried, &padding);
            iov[header_at].iov_base = headers[records++];
            iov[header_at].iov_len = FCGI_RECORD_HEADER_SIZE;
            if (padding) {
                iov[used].iov_base = (void *)zeros;
                iov[used++].iov_len = padding;
            }
            remaining -= length;
        }
        if (remaining == 0 && last) {
            dt_fcgi_response_end_encode(end, response->request_id, 0,
                                     FCGI_PROTOCOL_STATUS_REQUEST_COMPLETE);
            iov[used].iov_base = end;
            iov[used++].iov_len = sizeof(end);
        }
        if (used > 0 && send_all(response->fd, iov, used) < 0)
            return fail(response);
    } while (remaining > 0);
    if (last)
        response->ended = 1;
    return 0;
}

int dt_fcgi_response_write(struct fcgi_response *response, const void *data, size_t length)
{
    struct iovec part = { (void *)data, length };

    return dt_fcgi_response_writev(response, &part, 1, 0);
}

int dt_fcgi_response_send_whole(struct fcgi_response *response, const void *data, size_t length)
{
    struct iovec part = { (void *)data, length };

    return dt_fcgi_response_writev(response, &part, 1, 1);
}

void dt_fcgi_response_forbid_keepalive(struct fcgi_response *response)
{
    response->keep_connection = 0;
}

int dt_fcgi_response_end(struct fcgi_response *response)
{
    if (!response->ended && dt_fcgi_response_writev(response, NULL, 0, 1) < 0)
        return 0;
    return response->keep_connection && !response->failed;
}
