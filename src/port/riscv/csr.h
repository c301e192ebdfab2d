/* src/port/riscv/csr.h: CSR instructions in inline assembly. Since the
 * 20191213 ISA spec (GCC 12's default) they belong to the Zicsr extension,
 * which -march must name (rv32imac_zicsr), but naming it defeats the
 * multilib selection of most toolchains (picolibc's rv32imac/ilp32): so
 * the assembler is told per statement. */
#ifndef PTRIO_RISCV_CSR_H
#define PTRIO_RISCV_CSR_H

#if defined(__riscv_zicsr) || !defined(__GNUC__) || __GNUC__ < 12
#define PTRIO_CSR(insn) insn
#else
#define PTRIO_CSR(insn)                                                     \
    ".option push\n\t.option arch, +zicsr\n\t" insn "\n\t.option pop"
#endif

#endif /* PTRIO_RISCV_CSR_H */
