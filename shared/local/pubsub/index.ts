/** Local Pub/Sub: the Cloud SDK emulator when installed, an embedded in-process delivery otherwise. */
export { pubsubPart, type PubsubPart, type PubsubPartOptions } from './part';
export { startLocalPubsub, type SmelterPubsub, type StartLocalPubsubOptions } from './local-pubsub';
export { discoverEmulator, INSTALL_HINT, type EmulatorDiscovery } from './discovery';
export { startEmulator, emulatorReady, freePort, type EmulatorHandle } from './emulator';
export { EmbeddedPubsub } from './embedded';
export { planPubsub, type PubsubPlan, type PlannedSubscription } from './plan';
export { pushEndpoint, pushBody, postPush } from './push';
export { PushRelay } from './relay';
export { serveRegistered, type ServedFunction } from './serve';
export { TopicLog, topicLogFile, type TopicLogEntry } from './topic-log';
