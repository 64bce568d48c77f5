# Shared by bench/soak.sh and bench/features-ab.sh (sourced, not run).

# A free loopback TCP port not handed out before by this script (the kernel may give the same
# free port to two back-to-back binds; `$$` is the script's PID in `$(...)` subshells too).
free_port() {
  local seen=${TMPDIR:-/tmp}/sluice-bench-ports.$$ p
  while :; do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    grep -qx "$p" "$seen" 2>/dev/null || break
  done
  echo "$p" >> "$seen"
  echo "$p"
}

# nginx_conf DIR NAME HTTP_BODY: writes DIR/NAME.conf, a one-worker nginx with logs off and long
# keep-alive, pid in DIR/NAME.pid, HTTP_BODY inside `http { }`.
nginx_conf() {
  local dir=$1 name=$2 body=$3
  cat > "$dir/$name.conf" <<CONF
worker_processes 1;
pid $dir/$name.pid;
error_log $dir/$name-error.log;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir; scgi_temp_path $dir;
$body
}
CONF
}

# start_upstream DIR PORT: an nginx answering 200 "hello" on 127.0.0.1:PORT, one worker on
# CPU 1, its files in DIR (the caller's trap kills $(cat DIR/nginx.pid)).
start_upstream() {
  local dir=$1 port=$2
  nginx_conf "$dir" nginx "  server { listen 127.0.0.1:$port; location / { return 200 \"hello\"; } }"
  taskset -c 1 nginx -c "$dir/nginx.conf" -p "$dir"
}

# Same-minute A/B of Sluice configs (bench/features-ab.sh, bench/auth-ab.sh).
# ab_start WORK UPSTREAM_PORT NAME TEMPLATE: renders TEMPLATE for one event loop and starts it
# on CPU 0 in the background; its port goes to AB_PORT[NAME].
declare -gA AB_PORT
ab_start() {
  local work=$1 up=$2 name=$3 tmpl=$4
  AB_PORT[$name]=$(free_port)
  sed -e "s/{{PORT}}/${AB_PORT[$name]}/g" -e "s/{{UPSTREAM}}/127.0.0.1:$up/g" -e "s/{{WORKERS}}/1/g" \
    -e "s/{{ADMIN_PORT}}/$(free_port)/g" -e "s|{{RUNDIR}}|$work|g" "$tmpl" > "$work/$name.yaml"
  taskset -c 0 .build/release/sluice serve --config "$work/$name.yaml" --log-level error &
}

# ab_rounds A B ROUNDS SECONDS: wrk (1 thread, 64 connections, CPU 1, extra arguments from the
# array AB_WRK_ARGS) alternates between the two, after one warm-up run each; prints each round
# and the median B/A against a target of 0.9.
AB_WRK_ARGS=()
ab_rounds() {
  local a=$1 b=$2 rounds=$3 duration=$4 r ra rb ratio
  local ratios=()
  ab_rps() {
    taskset -c 1 wrk -t1 -c64 -d"${duration}s" "${AB_WRK_ARGS[@]}" "http://127.0.0.1:${AB_PORT[$1]}/" |
      awk '/Requests\/sec/ {print $2}'
  }
  ab_rps "$a" >/dev/null
  ab_rps "$b" >/dev/null
  echo "round ${a}_rps ${b}_rps ratio"
  for ((r = 1; r <= rounds; r++)); do
    ra=$(ab_rps "$a")
    rb=$(ab_rps "$b")
    ratio=$(python3 -c "print(f'{$rb / $ra:.3f}')")
    ratios+=("$ratio")
    echo "$r $ra $rb $ratio"
  done
  printf '%s\n' "${ratios[@]}" | python3 -c "import sys, statistics; v=[float(x) for x in sys.stdin]; print(f'median $b/$a: {statistics.median(v):.3f} (target >= 0.9)')"
}
