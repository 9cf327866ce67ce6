export * from './envelope';
export * from './message';
export * from './normalize';
export * from './identity';
export * from './traits';
export * from './segment';
export * from './lifecycle';
export * from './storable';
