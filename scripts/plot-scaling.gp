# The PKI scaling figure of BENCHMARKS.md: time to make a zone's node certificates
# against their number, zone-etcd and the openssl script, on disk and on a tmpfs.
# usage: gnuplot -e "csv='bench/results/pki-scaling.csv'; png='bench/results/pki-scaling.png'" scripts/plot-scaling.gp
set terminal pngcairo size 900,560 font ",11"
set output png
set datafile separator ","
set logscale xy
set xrange [2.5:130]
set xtics (3, 7, 31, 101)
set xlabel "node certificates in the zone (101 = 5 members bootstrapped + 96 nodes activated one process each)"
set ylabel "time to make the set (ms, median)"
set key top left
set grid
set title "zone-etcd bootstrap/activate against one openssl genpkey+req+x509 per certificate"
plot "< grep '^disk' ".csv  using 2:4 with linespoints lw 2 pt 7 lc rgb "#c0392b" title "openssl script (disk)", \
     "< grep '^tmpfs' ".csv using 2:4 with linespoints lw 2 pt 6 dt 2 lc rgb "#e67e22" title "openssl script (tmpfs)", \
     "< grep '^disk' ".csv  using 2:3 with linespoints lw 2 pt 5 lc rgb "#2471a3" title "zone-etcd (disk, fsync per file)", \
     "< grep '^tmpfs' ".csv using 2:3 with linespoints lw 2 pt 4 dt 2 lc rgb "#17a589" title "zone-etcd (tmpfs)"
