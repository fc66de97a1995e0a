#!/usr/bin/env python3
# What etcd's database file grows by per byte put (docs/design/quotas.md, the factor F):
# one member of the bundled etcd on 127.0.254.77 (plain HTTP, a data directory in /tmp,
# removed at the end), puts through its gateway, sizes from its metrics.
import base64, json, os, re, shutil, subprocess, sys, time, urllib.request
ETCD=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../bin/etcd")
HOST="127.0.254.77"; C=42379; P=42380
def start(d):
    shutil.rmtree(d, ignore_errors=True); os.makedirs(d)
    p=subprocess.Popen([ETCD,"--data-dir",d,"--listen-client-urls",f"http://{HOST}:{C}","--advertise-client-urls",f"http://{HOST}:{C}",
        "--listen-peer-urls",f"http://{HOST}:{P}","--initial-advertise-peer-urls",f"http://{HOST}:{P}",
        "--initial-cluster",f"default=http://{HOST}:{P}","--quota-backend-bytes",str(8<<30)],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    for _ in range(100):
        try: urllib.request.urlopen(f"http://{HOST}:{C}/health",timeout=1).read(); return p
        except Exception: time.sleep(0.1)
    raise SystemExit("no etcd")
def call(path, body):
    r=urllib.request.Request(f"http://{HOST}:{C}{path}", data=json.dumps(body).encode(), method="POST")
    return json.loads(urllib.request.urlopen(r,timeout=10).read())
def put(k,v): return call("/v3/kv/put",{"key":base64.b64encode(k).decode(),"value":base64.b64encode(v).decode()})
def sizes():
    m=urllib.request.urlopen(f"http://{HOST}:{C}/metrics").read().decode()
    tot=float(re.search(r'^etcd_mvcc_db_total_size_in_bytes (\S+)',m,re.M).group(1))
    use=float(re.search(r'^etcd_mvcc_db_total_size_in_use_in_bytes (\S+)',m,re.M).group(1))
    return int(tot),int(use)
def compact():
    rev=int(call("/v3/kv/range",{"key":base64.b64encode(b"x").decode()})["header"]["revision"])
    call("/v3/kv/compaction",{"revision":rev,"physical":True})
    time.sleep(1.5)
for name,count,vsize,rewrites in [("1KB x 20000",20000,1024,1),("10KB x 3000",3000,10240,1),("100KB x 300",300,102400,1),("100B x 50000",50000,100,1),("10KB rewritten 3000x (1 key)",1,10240,3000)]:
    d=f"/tmp/bbolt-factor-data"; p=start(d)
    try:
        t0,u0=sizes()
        live=0
        for r in range(rewrites):
            for i in range(count):
                k=f"apps/photos/item-{i:08d}".encode(); v=os.urandom(vsize//2).hex().encode()[:vsize]
                put(k,v)
        live=count*(len(b"apps/photos/item-00000000")+vsize)
        written=live*rewrites
        t1,u1=sizes()
        compact(); t2,u2=sizes()
        print(f"{name}: live {live} written {written}; db {t1-t0} inuse {u1-u0} (x{(t1-t0)/written:.2f} of written, x{(u1-u0)/live:.2f} in use/live) ; after compaction db {t2-t0} inuse {u2-u0} (x{(u2-u0)/live:.2f})", flush=True)
    finally:
        p.terminate(); p.wait()
shutil.rmtree("/tmp/bbolt-factor-data", ignore_errors=True)
