import json,sys
r=json.load(open(sys.argv[1]))
for k in ['backup_delta_1s','backup']:
    if k not in r: continue
    b=r[k]; L=b['latency']
    print(k, 'load',b['load_start'],'->',b['load_end'])
    for side in ['without','with_active','with_local_chain_on_tmpfs','with_niced','without_again']:
        if side in L: print('  %-26s'%side, L[side]['requests'], L[side]['p50_ms'], L[side]['p99_ms'], [x['p99_ms'] for x in L[side]['per_round']])
    for f in ['p99_ratio','p99_ratio_interval_95','tmpfs_p99_ratio','niced_p99_ratio','niced_p99_ratio_interval_95','aa_p99_ratio','aa_p99_ratio_interval_95','per_round_p99_ratio_median','per_round_p99_ratios']:
        if f in L: print('  ',f,L.get(f))
    c=b['latency_around_cuts']
    for side in c:
        bins=c[side]['bins']
        print('  cuts %-26s'%side, ' '.join('%d:%d/%d'%(x['from_ms'],x['over_without_p99'],x['latency']['n']) for x in bins[:8]), c[side].get('farther', c[side].get('rest','')))
    print('  cpu', {k2:v['median'] for k2,v in b['cpu_share_of_one_core_with_active'].items()})
    print('  rpo', {t: (v['oldest_missing_s']['max'], v['lost_writes']) for t,v in b['rpo']['targets'].items()})
