// Errno values helpers return (negated), beyond those the map interface already names.
export { EEXIST, EINVAL, ENOENT, ENOSPC, ENOTSUPP, E2BIG } from '../maps/BpfMap.js';
export const EPERM = 1;
export const EAGAIN = 11;
export const EFAULT = 14;
export const EOPNOTSUPP = 95;
