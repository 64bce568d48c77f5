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
