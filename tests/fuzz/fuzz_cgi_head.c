/*
 * fuzz_cgi_head.c - what the trigger client parses itself, or through its
 * own wrapper, from the command line and the network: FastCGI addresses,
 * the CGI head of a FastCGI app's answer (cgi_head.h), and the status
 * page's job JSON through dt_job_status_parse() (json-c).
 *
 * Checked beyond "no crash":
 *  - an address's host is short, printable, without brackets, and its port
 *    1..65535;
 *  - a CGI head parse is incremental: a prefix never disagrees with the
 *    whole ("need more" or the same answer), and the head alone parses to
 *    the same result; a status is 100..599, a job id short visible ASCII;
 *  - dt_job_status_parse() fills NUL-terminated fields inside their arrays,
 *    progress is -1..100, and a text it accepts re-parses the same after
 *    trailing whitespace.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cgi_head.h"
#include "client/job_status.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_address(const char *text)
{
    struct fcgi_address address;

    if (dt_fcgi_address_parse(text, &address) != 0)
        return;
    size_t length = strnlen(address.host, sizeof(address.host));
    CHECK(length > 0 && length < sizeof(address.host));
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)address.host[i];
        CHECK(c > ' ' && c < 0x7f && c != '[' && c != ']' && c != '/');
    }
    CHECK(address.port >= 1 && address.port <= 65535);
}

static void check_job_id(const char *id)
{
    size_t length = strnlen(id, CGI_JOB_ID_SIZE);

    CHECK(length < CGI_JOB_ID_SIZE);
    for (size_t i = 0; i < length; i++)
        CHECK((unsigned char)id[i] > ' ' && (unsigned char)id[i] < 0x7f);
}

static void check_cgi_head(const char *data, size_t size)
{
    struct cgi_head whole, part, alone;
    int parsed = dt_cgi_response_parse(data, size, &whole);

    CHECK(parsed >= -1 && parsed <= (int)size);
    if (parsed > 0) {
        CHECK(whole.status >= 100 && whole.status <= 599);
        check_job_id(whole.job_id);
        CHECK(dt_cgi_response_parse(data, (size_t)parsed, &alone) == parsed);
        CHECK(alone.status == whole.status && strcmp(alone.job_id, whole.job_id) == 0);
    }
    /* A prefix says "need more" or already what the whole says. */
    for (size_t cut = 0; cut < size; cut += 1 + cut / 8) {
        int early = dt_cgi_response_parse(data, cut, &part);
        if (early == 0)
            continue;
        CHECK(early == parsed);
        if (early > 0)
            CHECK(part.status == whole.status && strcmp(part.job_id, whole.job_id) == 0);
    }
}

static void check_job_status(const char *data, size_t size)
{
    detach_job_status job, again;
    char *padded;

    if (dt_job_status_parse(data, size, &job) != 0)
        return;
    CHECK(memchr(job.state, '\0', sizeof(job.state)) != NULL);
    CHECK(memchr(job.message, '\0', sizeof(job.message)) != NULL);
    CHECK(job.progress >= -1 && job.progress <= 100);
    padded = malloc(size + 2);
    CHECK(padded);
    memcpy(padded, data, size);
    memcpy(padded + size, " \n", 2);
    CHECK(dt_job_status_parse(padded, size + 2, &again) == 0);
    CHECK(strcmp(job.state, again.state) == 0 && strcmp(job.message, again.message) == 0);
    CHECK(job.progress == again.progress && job.exit_code == again.exit_code &&
          job.exit_signal == again.exit_signal && job.connection_status == again.connection_status);
    free(padded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);

    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    check_address(text);
    check_cgi_head((const char *)data, size);
    check_job_status((const char *)data, size);
    free(text);
    return 0;
}
