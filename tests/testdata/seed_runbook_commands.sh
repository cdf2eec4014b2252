# Every command of the original "Quarantine Overflow" runbook (the operator notes StemeDB
# is built from), verbatim, with one change: `-H "Authorization: Bearer $TOKEN"` added to
# every call of the admin API, which requires the admin token.
#
# tests/integration/test_runbook_quarantine.py runs each section (a line "## name" starts
# one) with `bash -euo pipefail` against a real server, after replacing the runbook's
# placeholders with values of its scenario:
#
#   localhost:18180              the test server's port
#   8f3a2b1c...                  the flooding agent's id
#   KNOWN_GOOD_AGENT             a known-good agent's id
#   known-backfill-agent-id      the backfill agent's id
#   $AGENT_SIGNATURE, '{...}'    a signed body of the banned agent, and its signature
#   2026-02-12T00:00:00Z         a time one day ahead: the example date has passed, and the
#                                server refuses an allowlist entry that has already expired
#
# Each section runs in a fresh shell, so a section using a variable the runbook set in an
# earlier one repeats that assignment line. Lines starting with "#SKIP" cannot run in a test (they need root, systemd or a terminal);
# the reason follows, and the test runs the equivalent named there. "#|" lines belong to
# the skipped command above them. Lines ending in "# metrics" read /metrics.

## s1_group_by_agent
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items | group_by(.agent_id) | map({agent: .[0].agent_id, count: length}) | sort_by(.count) | reverse | .[0:5]'

## s1_agent_items
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine?agent_id=8f3a2b1c... | jq '.items[0:5]'

## s1_agent_breaker
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/circuit_breakers | jq '.circuit_breakers[] | select(.agent_id == "8f3a2b1c...")'

## s1_ban
AGENT_ID="8f3a2b1c..."  # Replace with actual agent ID
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/circuit_breakers/$AGENT_ID
curl -X POST http://localhost:18180/v1/admin/circuit_breakers/$AGENT_ID/open \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{"reason": "flooding_quarantine", "duration_seconds": 3600}'

## s1_verify_429
curl -X POST http://localhost:18180/v1/assert \
  -H "X-Agent-Signature: $AGENT_SIGNATURE" \
  -d '{...}'

## s1_bulk_reject
AGENT_ID="8f3a2b1c..."  # Replace with actual agent ID
ITEM_IDS=$(curl -s -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine?agent_id=$AGENT_ID | jq -r '.items[].id')
for id in $ITEM_IDS; do
  curl -X POST http://localhost:18180/v1/admin/quarantine/$id/reject \
    -H "Authorization: Bearer $TOKEN" \
    -H "Content-Type: application/json" \
    -d '{"reason": "agent_flooding"}'
done

## s1_count
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items | length'

## s2_group_by_reason
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items | group_by(.reason) | map({reason: .[0].reason, count: length})'

## s2_sample_reason
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items[] | select(.reason == "LowQuality") | .[0:3]'

## s2_thresholds
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/content_defense/thresholds

## s2_tune_and_restart
export STEMEDB_QUALITY_THRESHOLD=0.5
#SKIP writes /etc/stemedb/config.toml as root; equivalent: the same TOML in a temporary file named by STEMEDB_CONFIG, with STEMEDB_QUALITY_THRESHOLD=0.5 in the server's environment
#| cat >> /etc/stemedb/config.toml <<EOF
#| [content_defense]
#| quality_threshold = 0.5
#| confidence_threshold = 0.9 # Raised from 0.8 to reduce false positives
#| duplicate_lookback_hours = 24
#| EOF
#SKIP needs systemd and root; equivalent: stop and start the test's server process
#| sudo systemctl restart stemedb-api
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/content_defense/thresholds

## s2_approve_known_good
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items[] | select(.agent_id == "KNOWN_GOOD_AGENT") | .id' | xargs -I {} \
  curl -X POST -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine/{}/approve
curl http://localhost:18180/metrics | grep stemedb_quarantine_approved_total  # metrics

## s3_false_positive_rate
curl http://localhost:18180/metrics | grep -E '(quarantine_total|quarantine_approved_total)'  # metrics
#SKIP needs systemd's journal; equivalent: the audit log records every threshold change with its source (GET /v1/admin/audit)
#| journalctl -u stemedb-api -n 500 | grep -i "content_defense"

## s3_revert_defaults
#SKIP writes /etc/stemedb/config.toml as root; equivalent: the same TOML in a temporary file named by STEMEDB_CONFIG
#| cat > /etc/stemedb/config.toml <<EOF
#| [content_defense]
#| quality_threshold = 0.6
#| confidence_threshold = 0.85
#| duplicate_lookback_hours = 48
#| untrusted_confidence_threshold = 0.95
#| EOF
#SKIP needs systemd and root; equivalent: stop and start the test's server process
#| sudo systemctl restart stemedb-api
#SKIP watch repeats forever on a terminal; equivalent: the command it repeats, once
#| watch -n 10 'curl -s http://localhost:18180/metrics | grep quarantine_pending'
curl -s http://localhost:18180/metrics | grep quarantine_pending  # metrics

## s4_rates
curl http://localhost:18180/metrics | grep stemedb_quarantine_rate_per_minute  # metrics
curl http://localhost:18180/metrics | grep stemedb_ingest_rate_per_minute  # metrics

## s4_approve_backfill
TRUSTED_AGENT="known-backfill-agent-id"
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine?agent_id=$TRUSTED_AGENT | jq -r '.items[].id' | xargs -I {} \
  curl -X POST -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine/{}/approve

## s4_allowlist
TRUSTED_AGENT="known-backfill-agent-id"
curl -X POST http://localhost:18180/v1/admin/content_defense/allowlist \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d '{"agent_id": "'$TRUSTED_AGENT'", "expires_at": "2026-02-12T00:00:00Z", "reason": "backfill_operation"}'

## validation
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items | length'
curl -H "Authorization: Bearer $TOKEN" http://localhost:18180/v1/admin/quarantine | jq '.items | group_by(.agent_id) | map(length) | max'
curl http://localhost:18180/metrics | grep -E '(quarantine_approved|quarantine_rejected)'  # metrics
curl http://localhost:18180/metrics | grep stemedb_quarantine_rate_per_minute  # metrics
