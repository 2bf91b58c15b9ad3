#!/bin/bash
# Which gunicorn setup serves the portal best on this machine: the accept storm and the
# offer-link burst under sync, gthread and gevent workers, one after another in one run.
# Usage (from the project root, with TEST_DATABASE_URL / TEST_REDIS_URL as for the tests):
#   bash bench/serving.sh            # PATIENTS=200 ROUNDS=2 by default
set -u
cd "$(dirname "$0")/.."
py=.venv/bin/python
redis_db=${REDIS_DB:-15}  # the Redis database for the benches' jobs (flushed after each)
patients=${PATIENTS:-200}
rounds=${ROUNDS:-2}
configs=${CONFIGS:-"sync:5:1 gthread:2:4 gthread:4:4 gevent:2:1"}
for config in $configs; do
    IFS=: read -r class workers threads <<<"$config"
    if [ "$class" = gevent ] && ! $py -c "import gevent" 2>/dev/null; then
        echo "== $class: gevent is not installed (pip install gevent); skipped"
        continue
    fi
    echo "== $class, $workers workers x $threads threads"
    $py bench/accept_storm.py --no-reference --patients "$patients" --rounds "$rounds" \
        --workers "$workers" --threads "$threads" --worker-class "$class" \
        --probe-requests 500 --redis-db "$redis_db" \
        2>&1 | grep -E "^(median|portal storm)"
    $py bench/offer_burst.py --patients "$patients" --rounds "$rounds" \
        --workers "$workers" --threads "$threads" --worker-class "$class" --redis-db "$redis_db" \
        2>&1 | grep -E "^median"
done
