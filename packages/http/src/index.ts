export * from './auth';
export * from './errors';
export * from './openapi';
export * from './server';
