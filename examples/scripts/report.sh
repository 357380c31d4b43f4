#!/bin/sh
# A sample job for detachd: "builds a report" in five steps.
# Progress goes to fd 3 as "PERCENT message" lines; stdout and stderr go to
# the job log; the request body (form fields) arrives on stdin.
fields=$(cat)
echo "report for ${fields:-nobody} (job $DETACH_JOB_ID, route $DETACH_ROUTE)"
for step in 1 2 3 4 5; do
    sleep "${REPORT_STEP_SECONDS:-1}"
    echo "$((step * 20)) step $step of 5" >&3
    echo "step $step done"
done
echo "report ready"
