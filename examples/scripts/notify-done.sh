#!/bin/sh
# on_shutdown for the sample job: runs once after it ends, however it ends.
# DETACH_CONNECTION_STATUS is PHP's connection_status(): 0 normal,
# 1 aborted, 2 timeout, 3 both.
echo "notify: job $DETACH_JOB_ID ended after ${DETACH_ELAPSED_MS} ms," \
     "connection_status=$DETACH_CONNECTION_STATUS" \
     "exit=${DETACH_EXIT_CODE:-signal $DETACH_EXIT_SIGNAL}"
