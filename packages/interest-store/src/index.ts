export * from './apply';
export * from './keys';
export * from './read';
