// Reads jobs from stdin, one per line: `CODEHEX MEMBYTES REPEAT`, and runs the program
// REPEAT times on rbpf's interpreter and on its JIT with MEMBYTES zeroed bytes as r1/r2.
// Prints `rbpf R0_INTERP R0_JIT NS_INTERP NS_JIT` (total ns over the repeats) per job.
// Helper 2 is a no-op returning 0, as in bench/vm.bench.ts.
use std::io::BufRead;
use std::time::Instant;

fn noop(_a: u64, _b: u64, _c: u64, _d: u64, _e: u64) -> u64 {
    0
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

fn main() {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.expect("stdin");
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 {
            continue;
        }
        let code = unhex(f[0]);
        let mem_len: usize = f[1].parse().expect("mem");
        let repeat: u32 = f[2].parse().expect("repeat");
        let mut vm = rbpf::EbpfVmRaw::new(Some(&code)).expect("rbpf rejected the program");
        vm.register_helper(2, noop).expect("helper");
        let mut mem = vec![0u8; mem_len.max(8)];
        let mut r_interp = 0;
        let t0 = Instant::now();
        for _ in 0..repeat {
            r_interp = vm.execute_program(&mut mem[..mem_len.max(8)]).expect("interpreter");
        }
        let ns_interp = t0.elapsed().as_nanos();
        vm.jit_compile().expect("jit");
        let mut mem = vec![0u8; mem_len.max(8)];
        let mut r_jit = 0;
        let t1 = Instant::now();
        for _ in 0..repeat {
            r_jit = unsafe { vm.execute_program_jit(&mut mem[..]).expect("jit run") };
        }
        let ns_jit = t1.elapsed().as_nanos();
        println!("rbpf {} {} {} {}", r_interp, r_jit, ns_interp, ns_jit);
    }
}
