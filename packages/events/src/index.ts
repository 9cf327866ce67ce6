export * from './fields';
export * from './identity';
export * from './lifecycle';
export * from './message';
export * from './storable';
export * from './fast-message';
export * from './fast-shape';
