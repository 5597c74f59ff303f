// Times hl_attention_prefill alone over an 8,000-token prefill in 512-token chunks (SmolLM2 shape:
// 9 query heads, 3 KV heads, dh 64; random q, k, v): wall and CPU seconds, GFLOP/s (4 dh flops per
// visible (query, key) pair, as `headlight bench --profile`). TQ / TK set the tiles, FUSED=0 the sgemm tiles; `ref.bin write`
// stores the output, `ref.bin check` compares against it. Build (repository root):
//   S=Sources/CNative; clang -O2 -I$S/include -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//     bench/attn_prefill.c $S/hl_kernels.c $S/hl_kernels_q8.c $S/hl_kernels_q8_x86.c $S/hl_kernels_q8_neon.c \
//     $S/hl_blas.c -lopenblas -lpthread -lm -o /tmp/attn_prefill && /tmp/attn_prefill [ref.bin write|check] [T]
#include "hl_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <sys/resource.h>
static double cpu(void){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec*1e-6+r.ru_stime.tv_sec+r.ru_stime.tv_usec*1e-6;}
static double wall(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int T=argc>3?atoi(argv[3]):8000, chunk=512, h=9,hkv=3,dh=64; float scale=0.125f;
  size_t qs=(size_t)h*dh, kvs=(size_t)hkv*dh;
  float *q=malloc(T*qs*4),*k=malloc(T*kvs*4),*v=malloc(T*kvs*4),*z=malloc(T*qs*4);
  srand(1); for(size_t i=0;i<T*qs;i++) q[i]=(rand()/(float)RAND_MAX-0.5f)*4;
  for(size_t i=0;i<T*kvs;i++){k[i]=(rand()/(float)RAND_MAX-0.5f)*4; v[i]=rand()/(float)RAND_MAX-0.5f;}
  if(getenv("TQ")||getenv("TK")) hl_attention_set_tiles(getenv("TQ")?atoi(getenv("TQ")):-1,getenv("TK")?atoi(getenv("TK")):-1);
  if(getenv("FUSED")) hl_attention_set_fused(atoi(getenv("FUSED")));
  double flops=0; double c0=cpu(), w0=wall();
  for(int p=0;p<T;p+=chunk){int t=T-p<chunk?T-p:chunk;
    hl_attention_prefill(q+p*qs,k,v,z+p*qs,t,p,h,hkv,dh,scale);
    flops+=4.0*dh*h*((double)t*p+(double)t*(t+1)/2);}
  double c1=cpu(), w1=wall();
  printf("T=%d threads=%d wall %.3f s cpu %.3f s  %.1f GFLOP/s (wall)  %.1f GFLOP/cpu-s\n",T,hl_kernels_threads(),w1-w0,c1-c0,flops/(w1-w0)/1e9,flops/(c1-c0)/1e9);
  if(argc>2){FILE*f; if(!strcmp(argv[2],"write")){f=fopen(argv[1],"wb");fwrite(z,4,T*qs,f);fclose(f);}
   else{float*r=malloc(T*qs*4);f=fopen(argv[1],"rb");fread(r,4,T*qs,f);fclose(f);double md=0;for(size_t i=0;i<T*qs;i++){double d=fabs(r[i]-z[i]);if(d>md)md=d;}printf("max abs diff vs ref %.3g\n",md);}}
  return 0;}
