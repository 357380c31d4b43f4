/*
 * access.h - who may read the status page: a list of addresses and
 * ranges ("127.0.0.1 ::1 10.0.0.0/8"), matched against REMOTE_ADDR.
 */
#ifndef DETACH_ACCESS_H
#define DETACH_ACCESS_H

/* 1 when address is in the list; 0 when not, or when either is malformed. */
int dt_access_allowed(const char *list, const char *address);
/* 0 when every entry of list parses; -1 naming the bad one in *bad. */
int dt_access_list_valid(const char *list, const char **bad_start, int *bad_length);

#endif
