#!/bin/sh
# One-shot MinIO setup for compose.yaml's minio-setup service (the quay.io/minio/mc image).
# Safe to run on every `docker compose up`: each step leaves things as they are when already done.
#   1. wait until MinIO accepts the root credentials;
#   2. create the bucket if it is missing;
#   3. give Chute its own MinIO user, allowed only this bucket (unless it is told to use root);
#   4. subscribe the webhook target MinIO was started with to object-created events, so that
#      MinIO POSTs them to the API's /v1/events/s3.
# POSIX sh and mc only: the mc image has no grep, sed or jq.
set -eu

MINIO_URL=${MINIO_URL:-http://minio:9000}
MINIO_ROOT_USER=${MINIO_ROOT_USER:?MINIO_ROOT_USER is required}
MINIO_ROOT_PASSWORD=${MINIO_ROOT_PASSWORD:?MINIO_ROOT_PASSWORD is required}
BUCKET=${CHUTE_S3_BUCKET:-chute}
APP_ACCESS_KEY=${CHUTE_S3_ACCESS_KEY_ID:-}
APP_SECRET_KEY=${CHUTE_S3_SECRET_ACCESS_KEY:-}
APP_POLICY=${MINIO_APP_POLICY:-chute-bucket-readwrite}
# The ARN of the target configured by MINIO_NOTIFY_WEBHOOK_*_CHUTE on the minio service.
# Set it to the empty string to skip the event subscription.
WEBHOOK_ARN=${MINIO_WEBHOOK_ARN-arn:minio:sqs::CHUTE:webhook}
WAIT_SECONDS=${MINIO_WAIT_SECONDS:-60}

log() { printf 'minio-setup: %s\n' "$*"; }
fail() {
    log "$*" >&2
    exit 1
}

# 1. `mc alias set` verifies the endpoint and credentials, so it doubles as the readiness probe.
waited=0
until mc alias set chute "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
    waited=$((waited + 1))
    if [ "$waited" -ge "$WAIT_SECONDS" ]; then
        mc alias set chute "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >&2 || true
        fail "MinIO at $MINIO_URL did not accept the root credentials within ${WAIT_SECONDS}s"
    fi
    sleep 1
done
log "connected to $MINIO_URL"

# 2. The bucket.
mc mb --ignore-existing "chute/$BUCKET"

# 3. Chute's credentials: a user whose policy reaches this bucket and nothing else (uploads through
# presigned POST and multipart, HEAD/GET for checks and the worker, DELETE for document removal).
# Creating the policy and adding the user both overwrite what exists, so a changed secret applies.
if [ -n "$APP_ACCESS_KEY" ] && [ "$APP_ACCESS_KEY" != "$MINIO_ROOT_USER" ]; then
    [ -n "$APP_SECRET_KEY" ] || fail "CHUTE_S3_SECRET_ACCESS_KEY is required with CHUTE_S3_ACCESS_KEY_ID"
    policy_file=$(mktemp)
    cat >"$policy_file" <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
      "Resource": ["arn:aws:s3:::$BUCKET"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                 "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
      "Resource": ["arn:aws:s3:::$BUCKET/*"]
    }
  ]
}
EOF
    mc admin policy create chute "$APP_POLICY" "$policy_file"
    rm -f "$policy_file"
    mc admin user add chute "$APP_ACCESS_KEY" "$APP_SECRET_KEY" >/dev/null
    # Attaching a policy that is already attached is an error in MinIO; that case is success here.
    if ! attach_output=$(mc admin policy attach chute "$APP_POLICY" --user "$APP_ACCESS_KEY" 2>&1); then
        user_info=$(mc admin user info chute "$APP_ACCESS_KEY" 2>&1) || true
        case "$user_info" in
            *"$APP_POLICY"*) ;;
            *) fail "could not attach policy $APP_POLICY to $APP_ACCESS_KEY: $attach_output" ;;
        esac
    fi
    log "user $APP_ACCESS_KEY has policy $APP_POLICY"
else
    log "Chute uses the root credentials (CHUTE_S3_ACCESS_KEY_ID is unset or the root user)"
fi

# 4. Object-created events ("put" covers PUT, POST, copy and CompleteMultipartUpload) to the webhook.
if [ -n "$WEBHOOK_ARN" ]; then
    if ! mc event add --event put --ignore-existing "chute/$BUCKET" "$WEBHOOK_ARN"; then
        fail "could not subscribe $WEBHOOK_ARN; is MINIO_NOTIFY_WEBHOOK_ENABLE_CHUTE=on set on the minio service?"
    fi
    log "bucket $BUCKET sends object-created events to $WEBHOOK_ARN"
else
    log "MINIO_WEBHOOK_ARN is empty: no event subscription"
fi

log "done"
